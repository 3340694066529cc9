"""Activity crediting: many volunteers credited by one request, all or nothing."""
