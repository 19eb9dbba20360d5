"""Getting bytes into storage: broker, sniffing, filenames."""
