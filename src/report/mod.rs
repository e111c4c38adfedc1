//! Report writers, each a pure function of the pipeline result.
