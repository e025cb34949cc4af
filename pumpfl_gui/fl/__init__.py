"""Flower runners, strategies and security (no Qt). Imports core only."""
