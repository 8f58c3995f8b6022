// Package engine implements herald's EventLog, StateView and Registry on
// NATS JetStream. It is the only package that knows NATS.
//
// # Modes
//
// Embedded (the default): the process runs a NATS server with JetStream,
// file storage under Config.DataDir/jetstream, no network listener, and
// talks to it over an in-process connection. External: with
// Config.NATSURLs it connects to a NATS cluster instead; everything else is
// the same code, and streams and buckets get Config.Replicas.
//
// # Layout
//
//   - Stream EVENTS, subjects ev.>: the log. Event id = stream sequence.
//     Subject ev.{org}.{channel}.{entity}.{device}.{entityUuid}, each field
//     mapped to its token one to one (see token). Retention by
//     MaxAge/MaxBytes, oldest first, applied by the engine rather than the
//     server, and never to an event STATE has not copied (see retention).
//   - Stream STATE: no subjects of its own, sources EVENTS, keeps one
//     message per subject: the newest event per subject, beyond the log's
//     retention. It is copied asynchronously; see Engine.StateLag.
//   - KV buckets herald_orgs, herald_keys, herald_users, herald_devices,
//     herald_settings, history 1, values the JSON of the herald types.
//   - File DataDir/herald-acked-id (embedded mode), outside the store: the
//     highest id acknowledged, so that Open can tell a log damaged on disk
//     from a whole one and refuse to reuse ids (see highwater.go).
//
// # What an acknowledgement means
//
// Append returns only after JetStream acknowledged every record (a PubAck
// per record, or for an atomic batch the commit's ack), and the engine
// keeps nothing of its own in memory. Several records are pipelined
// publishes by default (append.go, pipeline.go), each acknowledged once
// stored, so a failed Append may have stored some of them; AppendAtomic,
// and Append in embedded mode with Sync "always", publish one atomic batch
// instead. What an acknowledgement guarantees was read in nats-server
// v2.15.2:
//
// Sync "interval" (default), one server or Replicas 1: the data has been
// handed to the operating system with a write syscall before the ack is
// sent, so it survives kill -9 of herald (the page cache outlives the
// process) but not a power loss or kernel crash before the next fsync,
// at most SyncInterval later. The chain: stream.go
// processJetStreamMsgWithBatch calls store.StoreMsg and only then sends
// the PubAck; filestore.go fileStore.StoreMsg → storeRawMsg →
// fileStore.writeMsgRecord → msgBlock.writeMsgRecord(…, fs.fip) →
// writeMsgRecordLocked, which with flush-in-place (fs.fip) calls
// flushPendingMsgsLocked → msgBlock.writeAt → os.File.WriteAt (pwrite)
// synchronously. fs.fip is !AsyncFlush, and stream.go sets AsyncFlush only
// for replicated streams (!SyncAlways && Replicas > 1). fsync happens in
// fileStore.syncBlocks, on a timer (setSyncTimer) every SyncInterval.
// Atomic batches take the same path: the commit stores each message
// through processJetStreamMsgWithBatch before the single ack.
//
// Sync "always": the same path, and flushPendingMsgsLocked also calls
// fsync (mb.mfd.Sync) before returning, so the ack follows the fsync. For
// an atomic batch, processJetStreamAtomicBatchMsg defers the fsync to one
// FlushAllPending after the whole batch and acks after it; that is why
// Append uses atomic batches under Sync "always" (pipelined publishes
// would fsync once per record).
//
// Replicas > 1 (external cluster): the stream's own file store writes
// asynchronously (AsyncFlush), but the ack is sent only after a quorum of
// replicas has stored the entry in its Raft log, whose file store is
// created with AsyncFlush false (jetstream_cluster.go), so each entry is
// written to the OS on a quorum of nodes before the ack; it survives the
// loss of a minority of nodes, and kill -9 of any number of herald nodes.
// The cluster's sync setting decides fsync there.
//
// Dedupe state (Nats-Msg-Id) survives a restart: the server rebuilds it
// from the stored messages' headers.
package engine
