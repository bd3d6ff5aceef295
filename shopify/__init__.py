"""Everything that talks to Shopify or checks what Shopify signed."""
