"""The residual-face check of the output: what counts as a face left sharp (`residual`), the pass
over one processed chunk (`chunkpass`), and the contact sheet a person looks at (`contactsheet`)."""
