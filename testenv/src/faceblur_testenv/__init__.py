"""Test environment: a real control plane and node, image builds, a real S3 server, real test videos."""
