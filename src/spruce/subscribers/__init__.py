"""The standard subscribers the composition root attaches to every bus."""
