"""Tests of portal.domain.certs, one file per module of the package."""

import pytest

# helpers.check asserts that no internal error happened; rewrite it so a failure shows why.
pytest.register_assert_rewrite("tests.domain.certs.helpers")
