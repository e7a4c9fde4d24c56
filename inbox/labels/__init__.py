"""Labels on conversations: named, coloured, per account or for all, with maintained open counts."""
