"""Pure metric functions: arrays in, float out; validated once at the boundary."""
