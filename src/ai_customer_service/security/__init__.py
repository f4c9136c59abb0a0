"""Pure security primitives: HMAC webhook signatures and token hashing."""
