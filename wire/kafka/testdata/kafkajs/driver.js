'use strict'
// Test driver for wire/kafka/client_kafkajs_test.go: runs kafkajs against a
// Morax node and prints what happened as JSON lines on stdout (kafkajs's own
// log goes to stderr).
//
//   node driver.js <bootstrap> <topic> create <partitions>
//   node driver.js <bootstrap> <topic> produce <acks> <idempotent 0|1>
//       sends the stdin lines "codec<TAB>header<TAB>key<TAB>value" (header
//       "-": none) with one producer, in order, up to 8 records of one codec
//       per send; prints {"sent":n}
//   node driver.js <bootstrap> <topic> consume <group> <count>
//       reads count records in group, prints one {"p","o","k","v","h"} per
//       record, commits them, leaves the group and prints {"done":true}
//   node driver.js <bootstrap> <topic> member <group>
//       stays in group until SIGTERM, printing {"assigned":[...]} after each
//       join and each record as above; leaves the group on SIGTERM
//
// kafkajs has gzip built in; snappy, lz4 and zstd come from pure-JS codecs
// registered below (kafkajs-snappy, lz4js, zstd-codec), so nothing is
// compiled at install time.

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const { ZstdCodec } = require('zstd-codec')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) { return Buffer.from(lz4.compress(encoder.buffer)) },
  async decompress (buffer) { return Buffer.from(lz4.decompress(buffer)) }
})
const zstd = new Promise(resolve => ZstdCodec.run(z => resolve({ simple: new z.Simple(), streaming: new z.Streaming() })))
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress (encoder) { return Buffer.from((await zstd).simple.compress(encoder.buffer)) },
  // Streaming decompression: a frame need not carry its content size.
  async decompress (buffer) { return Buffer.from((await zstd).streaming.decompress(buffer)) }
})

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

const [bootstrap, topic, command, ...args] = process.argv.slice(2)

const kafka = new Kafka({
  clientId: 'morax-kafkajs-test',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, log }) => {
    process.stderr.write(`kafkajs ${level} ${namespace}: ${log.message} ${JSON.stringify(log)}\n`)
  },
  retry: { initialRetryTime: 100, retries: 10 }
})

const out = obj => process.stdout.write(JSON.stringify(obj) + '\n')

function consumerFor (group) {
  return kafka.consumer({
    groupId: group,
    sessionTimeout: 6000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 300,
    maxWaitTimeInMs: 200,
    retry: { initialRetryTime: 100, retries: 10 }
  })
}

function record (partition, message) {
  const h = message.headers && message.headers.codec
  return {
    p: partition,
    o: Number(message.offset),
    k: message.key ? message.key.toString() : '',
    v: message.value ? message.value.toString() : '',
    h: h ? h.toString() : ''
  }
}

async function readStdin () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString().split('\n').filter(l => l !== '')
}

async function create (partitions) {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: Number(partitions) }], waitForLeaders: true })
  await admin.disconnect()
  if (!created) throw new Error(`topic ${topic} not created`)
  out({ created: true })
}

async function produce (acks, idempotent) {
  const lines = await readStdin()
  const producer = kafka.producer(idempotent === '1' ? { idempotent: true, maxInFlightRequests: 1 } : {})
  await producer.connect()
  const records = lines.map(l => {
    const [codec, header, key, value] = l.split('\t')
    if (!(codec in codecs)) throw new Error(`unknown codec ${codec}`)
    const message = { key, value }
    if (header !== '-') message.headers = { codec: header }
    return { codec, message }
  })
  for (let i = 0; i < records.length;) {
    const codec = records[i].codec
    const messages = []
    for (; i < records.length && messages.length < 8 && records[i].codec === codec; i++) messages.push(records[i].message)
    await producer.send({ topic, acks: Number(acks), compression: codecs[codec], messages })
  }
  await producer.disconnect()
  out({ sent: records.length })
}

async function consume (group, count) {
  const want = Number(count)
  const consumer = consumerFor(group)
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const next = {}
  let seen = 0
  let finished
  const reached = new Promise(resolve => { finished = resolve })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (seen >= want) return
      out(record(partition, message))
      next[partition] = Number(message.offset) + 1
      if (++seen === want) finished()
    }
  })
  await reached
  consumer.pause([{ topic }])
  await consumer.commitOffsets(Object.entries(next).map(([p, o]) => ({ topic, partition: Number(p), offset: String(o) })))
  await consumer.disconnect()
  out({ done: true })
}

async function member (group) {
  const consumer = consumerFor(group)
  consumer.on(consumer.events.GROUP_JOIN, e => {
    out({ assigned: (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b) })
  })
  let stopping = false
  process.on('SIGTERM', async () => {
    if (stopping) return
    stopping = true
    try {
      await consumer.disconnect()
      out({ left: true })
      process.exit(0)
    } catch (err) {
      process.stderr.write(`disconnect: ${err.stack}\n`)
      process.exit(1)
    }
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => out(record(partition, message))
  })
}

const commands = { create, produce, consume, member }

if (!commands[command]) {
  process.stderr.write(`usage: node driver.js <bootstrap> <topic> create|produce|consume|member ...\n`)
  process.exit(2)
}
commands[command](...args).then(() => {
  if (command !== 'member') process.exit(0)
}, err => {
  process.stderr.write(`${command}: ${err.stack}\n`)
  process.exit(1)
})
