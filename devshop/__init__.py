"""devshop package."""
