"""One chunk of a job, fetched, run and published (`chunk.process_chunk`).

`halo` plans which frames the chunk decodes, `merge` brings in an earlier pass's detections,
`framing` shows frames to the detectors, `masking` decides what else a frame hides, `run` wires
the pipeline (`pipeline`, `threadplan`, `stageclock`) over one frozen `ChunkRun`, and `publish`
writes the documents in their order.
"""
