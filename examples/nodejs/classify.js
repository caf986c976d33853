#!/usr/bin/env node
// Minimal Node.js client for roiclass: classifies one rotated ROI of an image
// with ClassifyObject, then sends 10 frames over ClassifyObjectStream.
//
//   node classify.js --address 127.0.0.1:50051 --image cat.ppm
//   node classify.js --address 127.0.0.1:50051 --image cat.ppm --bad-request
//   node classify.js --address 127.0.0.1:50051 --image cat.ppm --tls-ca ca.pem \
//       [--tls-cert client.pem --tls-key client.key] [--token TOKEN]
//
// Several servers (--address a:p,b:p, or --server; or dns:///name:port): one
// channel over gRPC's ipv4:/ipv6: resolver with the service config below:
// round robin, a health check (grpc-js 1.14 ignores it; the C core honours it)
// and UNAVAILABLE retried on another backend.
// Plaintext unless a --tls-* flag is given. The token (--token, else the
// environment variable ROICLASS_TOKEN) is sent as `authorization: Bearer` on
// every call.
// The image is a binary PPM (P6, 8-bit RGB): it needs no decoder library.
// Stubs are built at run time from protos/ by @grpc/proto-loader.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const INCLUDE_DIRS = [
  path.join(REPO_ROOT, 'protos'),
  // google/rpc/status.proto, imported by classifier.proto.
  path.join(REPO_ROOT, 'examples', 'third_party'),
];
const STREAM_FRAMES = 10;
// The same service config as the Python client's (README: Load-balanced clients).
const SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  healthCheckConfig: { serviceName: '' },
  methodConfig: [{
    name: [{ service: 'roiclass.v1.ObjectClassifier' }],
    retryPolicy: {
      maxAttempts: 5, initialBackoff: '0.05s', maxBackoff: '1s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE'],
    },
  }],
};

const USAGE =
  'usage: node classify.js --address HOST:PORT[,HOST:PORT...] --image FILE.ppm ' +
  '[--roi X,Y,W,H[,ANGLE]] [--top-k N] [--model NAME] [--bad-request] ' +
  '[--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token TOKEN]';

// A wrong flag or file: one line naming it, exit status 2.
function usage(message) {
  if (!message) {
    console.log(USAGE);
    process.exit(0);
  }
  console.error(`error: ${message} (--help for usage)`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { address: '127.0.0.1:50051', image: null, roi: null, topK: 5,
                 model: '', badRequest: false, tlsCa: null, tlsCert: null, tlsKey: null,
                 token: process.env.ROICLASS_TOKEN || null };
  for (let i = 0; i < argv.length; i++) {
    const takeValue = () => {
      if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--address': case '--server': args.address = takeValue(); break;
      case '--image': args.image = takeValue(); break;
      case '--model': args.model = takeValue(); break;
      case '--top-k': args.topK = Number.parseInt(takeValue(), 10); break;
      case '--roi': {
        const v = takeValue().split(',').map(Number);
        if (v.length < 4 || v.length > 5 || v.some(Number.isNaN)) {
          usage('--roi must be X,Y,W,H[,ANGLE] (4 or 5 numbers; ANGLE in degrees, default 0)');
        }
        args.roi = v.length === 4 ? [...v, 0] : v;
        break;
      }
      case '--bad-request': args.badRequest = true; break;
      case '--tls-ca': args.tlsCa = takeValue(); break;
      case '--tls-cert': args.tlsCert = takeValue(); break;
      case '--tls-key': args.tlsKey = takeValue(); break;
      case '--token': args.token = takeValue(); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.image) usage('--image is required');
  if (!Number.isInteger(args.topK) || args.topK < 0) usage('--top-k must be >= 0');
  if ((args.tlsCert === null) !== (args.tlsKey === null)) {
    usage('--tls-cert and --tls-key go together (the client certificate and its private key)');
  }
  if (args.token === '') usage('--token must not be empty');
  return args;
}

// Reads a binary PPM (P6, maxval 255): header tokens may be separated by any
// whitespace and followed by '#' comments.
function readPpm(file) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    usage(`--image ${file}: cannot read (${err.code || err.message})`);
  }
  const tokens = [];
  let pos = 0;
  while (tokens.length < 4) {
    while (pos < data.length && /\s/.test(String.fromCharCode(data[pos]))) pos++;
    if (data[pos] === 0x23) {  // '#': comment to end of line
      while (pos < data.length && data[pos] !== 0x0a) pos++;
      continue;
    }
    const start = pos;
    while (pos < data.length && !/\s/.test(String.fromCharCode(data[pos]))) pos++;
    if (start === pos) throw new Error(`${file}: truncated PPM header`);
    tokens.push(data.toString('ascii', start, pos));
  }
  pos++;  // the single whitespace byte after maxval
  const [magic, w, h, maxval] = tokens;
  const width = Number(w);
  const height = Number(h);
  if (magic !== 'P6') throw new Error(`${file}: not a binary PPM (magic ${magic}, expected P6)`);
  if (maxval !== '255') throw new Error(`${file}: maxval ${maxval} unsupported, expected 255`);
  const size = width * height * 3;
  if (data.length - pos < size) throw new Error(`${file}: pixel data truncated`);
  return { width, height, pixels: data.subarray(pos, pos + size) };
}

// A PEM file holding a `what` (CERTIFICATE, PRIVATE KEY): checked here
// because grpc-js silently ignores a CA file without certificates.
function readPem(flag, file, what) {
  let pem;
  try {
    pem = fs.readFileSync(file);
  } catch (err) {
    usage(`${flag} ${file}: cannot read (${err.code || err.message})`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${what}-----`).test(pem.toString('latin1'))) {
    usage(`${flag} ${file}: not a PEM file with a ${what}`);
  }
  return pem;
}

// Plaintext by default; TLS when any --tls-* flag is given: --tls-ca is the
// CA that signed the server's certificate (else the system's roots), and
// --tls-cert/--tls-key the client's identity for mutual TLS.
function channelCredentials(args) {
  if (args.tlsCa === null && args.tlsCert === null) return grpc.credentials.createInsecure();
  const ca = args.tlsCa === null ? null : readPem('--tls-ca', args.tlsCa, 'CERTIFICATE');
  const cert = args.tlsCert === null ? null : readPem('--tls-cert', args.tlsCert, 'CERTIFICATE');
  const key = args.tlsKey === null ? null : readPem('--tls-key', args.tlsKey, 'PRIVATE KEY');
  try {
    return grpc.credentials.createSsl(ca, key, cert);
  } catch (err) {
    // e.g. a file that is not PEM, or a key that does not match the cert
    usage(`TLS files (--tls-ca/--tls-cert/--tls-key) rejected: ${err.message}`);
  }
}

// The token rides as per-call metadata rather than call credentials: grpc-js
// refuses to compose call credentials with a plaintext channel, and a token
// over plaintext on loopback is a setup the server allows.
function callMetadata(args) {
  const metadata = new grpc.Metadata();
  if (args.token !== null) metadata.set('authorization', `Bearer ${args.token}`);
  return metadata;
}

// One address as given; several (IP:PORT, comma-separated) or a dns: name: a
// balanced channel target and the options carrying the service config.
function channelTarget(address) {
  const targets = address.split(',').map((t) => t.trim());
  if (targets.length === 1 && !address.startsWith('dns:')) return { target: address, options: {} };
  const options = { 'grpc.service_config': JSON.stringify(SERVICE_CONFIG), 'grpc.enable_retries': 1 };
  if (targets.length === 1) return { target: address, options };
  const v4 = targets.every((t) => /^\d+\.\d+\.\d+\.\d+:\d+$/.test(t));
  const v6 = targets.every((t) => /^\[[0-9a-fA-F:.]+\]:\d+$/.test(t));
  if (!v4 && !v6) {
    usage(`--address ${address}: several servers must be all IPv4:PORT or all [IPv6]:PORT (or dns:///NAME:PORT)`);
  }
  // The static resolver's own authority is the whole list, which no TLS certificate names.
  options['grpc.default_authority'] = targets[0];
  return { target: `${v4 ? 'ipv4' : 'ipv6'}:${targets.join(',')}`, options };
}

function loadClient(address, credentials) {
  const definition = protoLoader.loadSync('roiclass/v1/classifier.proto', {
    includeDirs: INCLUDE_DIRS,
    keepCase: true,   // field names as in the .proto (snake_case)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(definition).roiclass.v1;
  const { target, options } = channelTarget(address);
  return new v1.ObjectClassifier(target, credentials, options);
}

function makeRequest(args, image, requestId, roi) {
  const [x, y, width, height, angle] = roi;
  return {
    model: args.model,
    request_id: requestId,
    top_k: args.topK,
    image: {
      raw: {
        width: image.width,
        height: image.height,
        pixel_format: 'RGB8',
        pixels: image.pixels,
      },
    },
    rois: [{ id: 'roi-0', rect: { origin: { x, y }, angle, width, height } }],
  };
}

// The status code as grpc-js reports it, by name (e.g. INVALID_ARGUMENT).
function statusName(code) {
  return grpc.status[code] !== undefined ? grpc.status[code] : `UNKNOWN_CODE_${code}`;
}

// google.rpc.Status and BadRequest: the server names each wrong field in a
// BadRequest detail of the google.rpc.Status it sends in the
// grpc-status-details-bin trailer.
function loadRpcTypes() {
  const root = new protobuf.Root();
  // google/protobuf/*.proto (imported by error_details.proto) are bundled
  // with protobufjs; google/rpc/*.proto come from examples/third_party.
  root.resolvePath = (origin, target) => path.join(REPO_ROOT, 'examples', 'third_party', target);
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return { Status: root.lookupType('google.rpc.Status'), BadRequest: root.lookupType('google.rpc.BadRequest') };
}

// The field violations of a failed call, [] when it carries none.
function fieldViolations(err) {
  const raw = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!raw || raw.length === 0) return [];
  const { Status, BadRequest } = loadRpcTypes();
  const violations = [];
  for (const detail of Status.decode(raw[0]).details) {
    if (detail.type_url === 'type.googleapis.com/google.rpc.BadRequest') {
      violations.push(...BadRequest.decode(detail.value).field_violations);
    }
  }
  return violations;
}

function printError(prefix, err) {
  console.log(`${prefix}: code=${statusName(err.code)} (${err.code}) message=${err.details}`);
  for (const v of fieldViolations(err)) {
    console.log(`  field=${v.field} description=${v.description}`);
  }
}

function printResponse(label, response) {
  console.log(`${label}: request_id=${response.request_id} model=${response.model} ` +
              `version=${response.model_version} total_us=${response.timing ? response.timing.total_us : 0}`);
  for (const result of response.results) {
    console.log(`  roi ${result.roi_id}: class_index=${result.class_index} ` +
                `class_name=${JSON.stringify(result.class_name)} score=${result.score.toFixed(4)}`);
    for (const c of result.confidences) {
      console.log(`    ${c.class_index} ${JSON.stringify(c.class_name)} ${c.confidence.toFixed(4)}`);
    }
  }
}

function classifyOnce(client, metadata, request, deadline) {
  return new Promise((resolve, reject) => {
    client.ClassifyObject(request, metadata, { deadline }, (err, response) => {
      if (err) reject(err); else resolve(response);
    });
  });
}

// Sends all frames, half-closes, and collects the responses in arrival order
// (the server answers in request order).
function classifyStream(client, metadata, requests, deadline) {
  return new Promise((resolve, reject) => {
    const responses = [];
    const call = client.ClassifyObjectStream(metadata, { deadline });
    call.on('data', (r) => responses.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const r of requests) call.write(r);
    call.end();
  });
}

function deadlineIn(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let image;
  try {
    image = readPpm(args.image);
  } catch (err) {
    usage(err.message);  // not a PPM this program reads
  }
  // Default ROI: most of the image, rotated 5 degrees clockwise about its
  // top-left corner, kept inside the image.
  const roi = args.roi || [image.width * 0.08, image.height * 0.02,
                           image.width * 0.85, image.height * 0.85, 5];
  const client = loadClient(args.address, channelCredentials(args));
  const metadata = callMetadata(args);

  if (args.badRequest) {
    const bad = makeRequest(args, image, 'bad-0', [roi[0], roi[1], 0, roi[3], roi[4]]);
    try {
      await classifyOnce(client, metadata, bad, deadlineIn(30));
      console.log('bad request: unexpectedly succeeded');
      process.exitCode = 1;
    } catch (err) {
      printError('bad request', err);
    }
    client.close();
    return;
  }

  const response = await classifyOnce(client, metadata, makeRequest(args, image, 'single-0', roi),
                                      deadlineIn(60));
  printResponse('ClassifyObject', response);

  const requests = [];
  for (let i = 0; i < STREAM_FRAMES; i++) {
    // Shift the ROI a little per frame, like a camera following a part.
    requests.push(makeRequest(args, image, `frame-${i}`, [roi[0] + i, ...roi.slice(1)]));
  }
  const responses = await classifyStream(client, metadata, requests, deadlineIn(120));
  console.log(`ClassifyObjectStream: ${responses.length} responses`);
  responses.forEach((r, i) => {
    if (r.outcome === 'error') {
      console.log(`  frame ${i}: request_id=${r.request_id} error code=${statusName(r.error.code)} ` +
                  `message=${r.error.message}`);
    } else if (r.response.results.length === 0) {
      console.log(`  frame ${i}: request_id=${r.request_id} no results`);
    } else {
      const top = r.response.results[0];
      console.log(`  frame ${i}: request_id=${r.request_id} class_index=${top.class_index} ` +
                  `class_name=${JSON.stringify(top.class_name)} score=${top.score.toFixed(4)}`);
    }
  });
  client.close();
}

main().catch((err) => {
  if (err && err.code !== undefined && err.details !== undefined) {
    printError('rpc failed', err);
  } else {
    console.error(err && err.stack ? err.stack : err);
  }
  process.exit(1);
});
