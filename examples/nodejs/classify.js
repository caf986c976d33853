#!/usr/bin/env node
// Minimal Node.js client for roiclass: classifies one rotated ROI of an image
// with ClassifyObject, then sends 10 frames over ClassifyObjectStream.
//
//   node classify.js --address 127.0.0.1:50051 --image cat.ppm
//   node classify.js --address 127.0.0.1:50051 --image cat.ppm --bad-request
//
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

function usage(message) {
  if (message) console.error(`error: ${message}`);
  console.error(
    'usage: node classify.js --address HOST:PORT --image FILE.ppm ' +
      '[--roi X,Y,W,H[,ANGLE]] [--top-k N] [--model NAME] [--bad-request]');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { address: '127.0.0.1:50051', image: null, roi: null, topK: 5,
                 model: '', badRequest: false };
  for (let i = 0; i < argv.length; i++) {
    const takeValue = () => {
      if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--address': args.address = takeValue(); break;
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
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.image) usage('--image is required');
  if (!Number.isInteger(args.topK) || args.topK < 0) usage('--top-k must be >= 0');
  return args;
}

// Reads a binary PPM (P6, maxval 255): header tokens may be separated by any
// whitespace and followed by '#' comments.
function readPpm(file) {
  const data = fs.readFileSync(file);
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

function loadClient(address) {
  const definition = protoLoader.loadSync('roiclass/v1/classifier.proto', {
    includeDirs: INCLUDE_DIRS,
    keepCase: true,   // field names as in the .proto (snake_case)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(definition).roiclass.v1;
  return new v1.ObjectClassifier(address, grpc.credentials.createInsecure());
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

function classifyOnce(client, request, deadline) {
  return new Promise((resolve, reject) => {
    client.ClassifyObject(request, { deadline }, (err, response) => {
      if (err) reject(err); else resolve(response);
    });
  });
}

// Sends all frames, half-closes, and collects the responses in arrival order
// (the server answers in request order).
function classifyStream(client, requests, deadline) {
  return new Promise((resolve, reject) => {
    const responses = [];
    const call = client.ClassifyObjectStream({ deadline });
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
  const image = readPpm(args.image);
  // Default ROI: most of the image, rotated 5 degrees clockwise about its
  // top-left corner, kept inside the image.
  const roi = args.roi || [image.width * 0.08, image.height * 0.02,
                           image.width * 0.85, image.height * 0.85, 5];
  const client = loadClient(args.address);

  if (args.badRequest) {
    const bad = makeRequest(args, image, 'bad-0', [roi[0], roi[1], 0, roi[3], roi[4]]);
    try {
      await classifyOnce(client, bad, deadlineIn(30));
      console.log('bad request: unexpectedly succeeded');
      process.exitCode = 1;
    } catch (err) {
      printError('bad request', err);
    }
    client.close();
    return;
  }

  const response = await classifyOnce(client, makeRequest(args, image, 'single-0', roi),
                                      deadlineIn(60));
  printResponse('ClassifyObject', response);

  const requests = [];
  for (let i = 0; i < STREAM_FRAMES; i++) {
    // Shift the ROI a little per frame, like a camera following a part.
    requests.push(makeRequest(args, image, `frame-${i}`, [roi[0] + i, ...roi.slice(1)]));
  }
  const responses = await classifyStream(client, requests, deadlineIn(120));
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
