"""Server-rendered pages: the analyst console and the customer demo pages."""
