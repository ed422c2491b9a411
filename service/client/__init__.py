"""The creator's side of Chronoseal: register images with a server and keep their bundles."""
