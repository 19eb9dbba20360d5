"""Background work: promotion, variants, purges, and the queues that run them."""
