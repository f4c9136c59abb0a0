"""The dialog engine: rules first, then knowledge-base retrieval, a calibrated confidence and a decision."""
