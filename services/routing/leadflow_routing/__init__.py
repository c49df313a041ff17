"""routing: who works each lead — SDR for MQLs, AE for qualified leads, AM for won accounts."""
