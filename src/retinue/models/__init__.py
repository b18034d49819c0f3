"""Model providers: one file per wire protocol, plus pricing and resolution of model strings."""
