"""Shared test settings. Area-specific fixtures live in tests/<area>/conftest.py."""

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# Helpers shared by several areas (childproc.py: real peers; buslog.py) import by module name.
sys.path.insert(0, str(Path(__file__).parent))

# The suite runs on small shared machines: generation speed says nothing about correctness,
# so neither slow data generation nor a slow example fails a property test.
settings.register_profile(
    "sipspeak", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("sipspeak")

# The CRM and mail stand-ins serve the integrations and the web tests alike.
pytest_plugins = ["crm_standin", "smtp_standin"]
