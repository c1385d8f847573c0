# Makes pytest put the repository root on sys.path, so tests import `sandbox.payment_provider`.
