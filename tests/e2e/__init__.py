"""End-to-end tests: Playwright + Debian's chromium against `streamlit run` (see conftest.py)."""
