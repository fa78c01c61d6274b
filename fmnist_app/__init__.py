"""Streamlit-only glue shared by the pages (the sidebar, the training job registry)."""
