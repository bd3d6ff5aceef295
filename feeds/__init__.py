"""Discovery feeds: the product index, feed definitions and their caching."""
