"""Tests for devmodel, the stand-in model provider."""
