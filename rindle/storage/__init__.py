"""Where Rindle keeps the bytes: the storage protocol and its adapters."""
