"""Tests for devshop, the stand-in Shopify."""
