"""The hookrelay command line: API keys, and the Docker-free local stack."""
