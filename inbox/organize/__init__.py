"""Organising the session list: bulk actions on selected conversations, and saved views."""
