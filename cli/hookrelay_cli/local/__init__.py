"""The Docker-free local stack: moto for AWS, the real handlers run in-process."""
