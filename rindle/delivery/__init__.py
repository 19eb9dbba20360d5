"""Getting bytes out: signed tokens, URLs, authorization."""
