"""Reading stills and clips into arrays (colour space, size and memory checked before decoding)."""
