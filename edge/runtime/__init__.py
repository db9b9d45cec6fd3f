"""The live node's runtime: the camera thread only analyses (`analyzer`), evidence and delivery run
on the evidence worker (`evidence_worker`), a crashed camera worker is restarted (`supervisor`)."""
