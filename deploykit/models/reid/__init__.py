"""Re-ID models (RGA, PGFA); importing this package registers them."""
