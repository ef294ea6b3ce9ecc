//! Recordings: dual-channel call audio uploaded while the call runs. S3/MinIO in production, local files embedded.
