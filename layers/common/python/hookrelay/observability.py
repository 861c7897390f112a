"""One Logger, Metrics and Tracer per process, shared by every handler and module."""

from aws_lambda_powertools import Logger, Metrics, Tracer

# X-Ray subsegments for every AWS call. Not the Tracer's default (every library the X-Ray SDK can
# patch and finds installed, each imported to be patched): a function must not pay at start for
# libraries it never calls. Webhook sends are not traced: patching requests would add our
# X-Amzn-Trace-Id header to every request a customer receives.
TRACED_LIBRARIES = ("botocore",)

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=TRACED_LIBRARIES)
