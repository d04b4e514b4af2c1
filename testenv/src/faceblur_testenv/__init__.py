"""Test environment: real control plane, local pod runner, real S3 server, real test videos."""
