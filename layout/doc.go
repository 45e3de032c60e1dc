// Package layout writes pulled images as OCI image layouts (image-spec
// image-layout.md): [Dir], a directory, and [Tar], the same layout as one tar stream
// that docker load and podman load accept too. Both receive blobs through OpenBlob and
// names through Tag, the two methods of ocistream.Destination.
//
// Neither lets a wrong byte reach the result. Dir writes each blob to a partial file
// under .ingest/, hashes it as it is written and renames it into blobs/ only after its
// size and digest were checked; a partial file left by an interrupted pull is resumed by
// the next one. Tar hashes each entry as it streams and, on a mismatch, ends the stream
// with an invalid block instead of the tar trailer and index.json, so no loader takes
// the archive for complete.
//
// A layout directory looks like this:
//
//	oci-layout           {"imageLayoutVersion":"1.0.0"}
//	index.json           one entry per name, annotated with the tag and the full name
//	blobs/sha256/<hex>   manifests, indexes, configs and layers, as the registry serves them
//	.ingest/             partial downloads (unknown to OCI readers, which ignore it)
//
// A tar stream holds the same entries (without .ingest/) plus docker's manifest.json and
// repositories files.
package layout
