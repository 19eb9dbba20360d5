// The @tus/server contender of bench/tus_throughput.py: the package's standalone server
// (node:http) with its FileStore, as its README shows, at /files.
//
//   node tus_node_server.mjs <port> <directory> <maxSize>
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const [port, directory, maxSize] = process.argv.slice(2);
const server = new Server({
  path: '/files',
  datastore: new FileStore({ directory }),
  maxSize: Number(maxSize),
});
server.listen({ host: '127.0.0.1', port: Number(port) }, () => {
  process.stdout.write(`listening on ${port}\n`);
});
