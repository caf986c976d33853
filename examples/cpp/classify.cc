// Minimal C++ client for roiclass: classifies one rotated ROI of an image
// with ClassifyObject, then sends 10 frames over ClassifyObjectStream.
//
//   roiclass_classify --address 127.0.0.1:50051 --image cat.ppm
//   roiclass_classify --address 127.0.0.1:50051 --image cat.ppm --bad-request
//   roiclass_classify --address 127.0.0.1:50051 --image cat.ppm --tls-ca ca.pem \
//       [--tls-cert client.pem --tls-key client.key] [--token TOKEN]
//
// Several servers (--address a:p,b:p, or --server; or dns:///name:port): one
// channel over gRPC's ipv4:/ipv6: resolver with kServiceConfig: round robin
// over the backends whose grpc.health.v1 status is SERVING, UNAVAILABLE
// retried on another backend.
// Plaintext unless a --tls-* flag is given. The token (--token, else the
// environment variable ROICLASS_TOKEN) is sent as `authorization: Bearer` on
// every call.
// The image is a binary PPM (P6, 8-bit RGB): it needs no decoder library.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "roiclass/v1/classifier.grpc.pb.h"

namespace {

using roiclass::v1::ClassifyObjectRequest;
using roiclass::v1::ClassifyObjectResponse;
using roiclass::v1::ClassifyObjectStreamResponse;
using roiclass::v1::ObjectClassifier;

constexpr int kStreamFrames = 10;

struct Args {
  std::string address = "127.0.0.1:50051";
  std::string image;
  std::string model;
  std::vector<double> roi;  // x, y, width, height, angle; empty = default
  unsigned top_k = 5;
  bool bad_request = false;
  std::string tls_ca;    // PEM files; all empty = plaintext
  std::string tls_cert;
  std::string tls_key;
  std::string token;     // empty = none
};

struct PpmImage {
  uint32_t width = 0;
  uint32_t height = 0;
  std::string pixels;  // RGB8, packed rows
};

// The same service config as the Python client's (README: Load-balanced clients).
constexpr const char* kServiceConfig = R"({
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": ""},
  "methodConfig": [{
    "name": [{"service": "roiclass.v1.ObjectClassifier"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]
})";

constexpr const char* kUsage =
    "usage: roiclass_classify --address HOST:PORT[,HOST:PORT...] --image FILE.ppm "
    "[--roi X,Y,W,H[,ANGLE]] [--top-k N] [--model NAME] [--bad-request] "
    "[--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token TOKEN]";

// A wrong flag or file: one line naming it, exit status 2 (--help: status 0).
[[noreturn]] void Usage(const std::string& message) {
  if (message.empty()) {
    std::cout << kUsage << "\n";
    std::exit(0);
  }
  std::cerr << "error: " << message << " (--help for usage)\n";
  std::exit(2);
}

// The whole of text as a number (std::stod alone accepts "5abc" and throws on "abc").
double ParseNumber(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) Usage(flag + " " + text + ": not a number");
  return v;
}

Args ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--address" || arg == "--server") {
      args.address = value();
    } else if (arg == "--image") {
      args.image = value();
    } else if (arg == "--model") {
      args.model = value();
    } else if (arg == "--top-k") {
      const std::string text = value();
      const double v = ParseNumber(arg, text);
      if (v < 0 || v != static_cast<unsigned>(v)) Usage("--top-k must be an integer >= 0");
      args.top_k = static_cast<unsigned>(v);
    } else if (arg == "--roi") {
      std::stringstream ss(value());
      std::string part;
      while (std::getline(ss, part, ',')) args.roi.push_back(ParseNumber(arg, part));
      if (args.roi.size() < 4 || args.roi.size() > 5) {
        Usage("--roi must be X,Y,W,H[,ANGLE] (4 or 5 numbers; ANGLE in degrees, default 0)");
      }
      args.roi.resize(5, 0.0);
    } else if (arg == "--bad-request") {
      args.bad_request = true;
    } else if (arg == "--tls-ca") {
      args.tls_ca = value();
    } else if (arg == "--tls-cert") {
      args.tls_cert = value();
    } else if (arg == "--tls-key") {
      args.tls_key = value();
    } else if (arg == "--token") {
      args.token = value();
      if (args.token.empty()) Usage("--token must not be empty");
    } else if (arg == "-h" || arg == "--help") {
      Usage("");
    } else {
      Usage("unknown argument " + arg);
    }
  }
  if (args.image.empty()) Usage("--image is required");
  if (args.tls_cert.empty() != args.tls_key.empty()) {
    Usage("--tls-cert and --tls-key go together (the client certificate and its private key)");
  }
  if (args.token.empty()) {
    const char* env = std::getenv("ROICLASS_TOKEN");
    if (env != nullptr) args.token = env;
  }
  return args;
}

// A PEM file holding a `what` (CERTIFICATE, PRIVATE KEY): checked here
// because gRPC reports a wrong file only as a failed connection.
std::string ReadPem(const std::string& flag, const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Usage(flag + " " + path + ": cannot read");
  const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Some BEGIN line must end in what ("EC PRIVATE KEY" counts as a PRIVATE KEY).
  for (size_t at = pem.find(what + "-----"); at != std::string::npos; at = pem.find(what + "-----", at + 1)) {
    const size_t line = pem.rfind('\n', at) + 1;  // npos + 1 == 0: the first line
    if (pem.compare(line, 11, "-----BEGIN ") == 0) return pem;
  }
  Usage(flag + " " + path + ": not a PEM file with a " + what);
}

// Plaintext by default; TLS when any --tls-* flag is given: --tls-ca is the
// CA that signed the server's certificate (else gRPC's default roots), and
// --tls-cert/--tls-key the client's identity for mutual TLS.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Args& args) {
  if (args.tls_ca.empty() && args.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  if (!args.tls_ca.empty()) options.pem_root_certs = ReadPem("--tls-ca", args.tls_ca, "CERTIFICATE");
  if (!args.tls_cert.empty()) {
    options.pem_cert_chain = ReadPem("--tls-cert", args.tls_cert, "CERTIFICATE");
    options.pem_private_key = ReadPem("--tls-key", args.tls_key, "PRIVATE KEY");
  }
  return grpc::SslCredentials(options);
}

// Reads a binary PPM (P6, maxval 255); '#' comments in the header are skipped.
PpmImage ReadPpm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  auto token = [&]() {
    std::string t;
    in >> std::ws;
    while (in.peek() == '#') {
      std::string comment;
      std::getline(in, comment);
      in >> std::ws;
    }
    in >> t;
    return t;
  };
  const std::string magic = token();
  if (magic != "P6") throw std::runtime_error(path + ": not a binary PPM (magic " + magic + ", expected P6)");
  PpmImage image;
  try {
    image.width = static_cast<uint32_t>(std::stoul(token()));
    image.height = static_cast<uint32_t>(std::stoul(token()));
  } catch (const std::logic_error&) {  // stoul: not a number, or out of range
    throw std::runtime_error(path + ": bad PPM width/height");
  }
  const std::string maxval = token();
  if (maxval != "255") throw std::runtime_error(path + ": maxval " + maxval + " unsupported, expected 255");
  in.get();  // the single whitespace byte after maxval
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  in.read(image.pixels.data(), static_cast<std::streamsize>(image.pixels.size()));
  if (in.gcount() != static_cast<std::streamsize>(image.pixels.size())) {
    throw std::runtime_error(path + ": pixel data truncated");
  }
  return image;
}

// grpc::StatusCode has no name lookup; the names match the gRPC spec.
const char* StatusName(int code) {
  static const char* const kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
      "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "UNKNOWN_CODE";
}

ClassifyObjectRequest MakeRequest(const Args& args, const PpmImage& image,
                                  const std::string& request_id, const std::vector<double>& roi) {
  ClassifyObjectRequest request;
  request.set_model(args.model);
  request.set_request_id(request_id);
  request.set_top_k(args.top_k);
  auto* raw = request.mutable_image()->mutable_raw();
  raw->set_width(image.width);
  raw->set_height(image.height);
  raw->set_pixel_format(roiclass::v1::RGB8);
  raw->set_pixels(image.pixels);
  auto* r = request.add_rois();
  r->set_id("roi-0");
  auto* rect = r->mutable_rect();
  rect->mutable_origin()->set_x(roi[0]);
  rect->mutable_origin()->set_y(roi[1]);
  rect->set_width(roi[2]);
  rect->set_height(roi[3]);
  rect->set_angle(roi[4]);
  return request;
}

// Every call: its deadline and the token. The token rides as per-call metadata
// rather than call credentials: gRPC does not send call credentials over a
// plaintext channel, and a token over plaintext on loopback is a setup the
// server allows.
void PrepareCall(grpc::ClientContext* context, const Args& args, int seconds) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  if (!args.token.empty()) context->AddMetadata("authorization", "Bearer " + args.token);
}

void PrintResponse(const std::string& label, const ClassifyObjectResponse& response) {
  std::printf("%s: request_id=%s model=%s version=%s total_us=%llu\n", label.c_str(),
              response.request_id().c_str(), response.model().c_str(),
              response.model_version().c_str(),
              static_cast<unsigned long long>(response.timing().total_us()));
  for (const auto& result : response.results()) {
    std::printf("  roi %s: class_index=%u class_name=\"%s\" score=%.4f\n", result.roi_id().c_str(),
                result.class_index(), result.class_name().c_str(), result.score());
    for (const auto& c : result.confidences()) {
      std::printf("    %u \"%s\" %.4f\n", c.class_index(), c.class_name().c_str(), c.confidence());
    }
  }
}

// The server names each wrong field in a google.rpc.BadRequest detail of the
// google.rpc.Status that gRPC hands over as error_details().
void PrintFieldViolations(const grpc::Status& status) {
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) return;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;  // another kind of detail
    for (const auto& v : bad.field_violations()) {
      std::printf("  field=%s description=%s\n", v.field().c_str(), v.description().c_str());
    }
  }
}

int RunBadRequest(ObjectClassifier::Stub& stub, const Args& args, const PpmImage& image,
                  std::vector<double> roi) {
  roi[2] = 0;  // width 0: the server rejects it, naming rois[0].rect.width
  grpc::ClientContext context;
  PrepareCall(&context, args, 30);
  ClassifyObjectResponse response;
  const grpc::Status status = stub.ClassifyObject(&context, MakeRequest(args, image, "bad-0", roi), &response);
  if (status.ok()) {
    std::printf("bad request: unexpectedly succeeded\n");
    return 1;
  }
  std::printf("bad request: code=%s (%d) message=%s\n", StatusName(status.error_code()),
              static_cast<int>(status.error_code()), status.error_message().c_str());
  PrintFieldViolations(status);
  return 0;
}

int RunStream(ObjectClassifier::Stub& stub, const Args& args, const PpmImage& image,
              const std::vector<double>& roi) {
  grpc::ClientContext context;
  PrepareCall(&context, args, 120);
  auto stream = stub.ClassifyObjectStream(&context);
  // Read on a second thread so that writing never waits on unread responses.
  std::vector<ClassifyObjectStreamResponse> responses;
  std::thread reader([&] {
    ClassifyObjectStreamResponse r;
    while (stream->Read(&r)) responses.push_back(r);
  });
  for (int i = 0; i < kStreamFrames; ++i) {
    // Shift the ROI a little per frame, like a camera following a part.
    std::vector<double> frame_roi = roi;
    frame_roi[0] += i;
    if (!stream->Write(MakeRequest(args, image, "frame-" + std::to_string(i), frame_roi))) break;
  }
  stream->WritesDone();
  reader.join();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) {
    std::printf("rpc failed: code=%s (%d) message=%s\n", StatusName(status.error_code()),
                static_cast<int>(status.error_code()), status.error_message().c_str());
    return 1;
  }
  std::printf("ClassifyObjectStream: %zu responses\n", responses.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    const auto& r = responses[i];
    if (r.has_error()) {
      std::printf("  frame %zu: request_id=%s error code=%s message=%s\n", i, r.request_id().c_str(),
                  StatusName(r.error().code()), r.error().message().c_str());
    } else if (r.response().results_size() == 0) {
      std::printf("  frame %zu: request_id=%s no results\n", i, r.request_id().c_str());
    } else {
      const auto& top = r.response().results(0);
      std::printf("  frame %zu: request_id=%s class_index=%u class_name=\"%s\" score=%.4f\n", i,
                  r.request_id().c_str(), top.class_index(), top.class_name().c_str(), top.score());
    }
  }
  return 0;
}

}  // namespace

// One address as given; several IP:PORT (comma-separated): one static-resolver target.
std::string ChannelTarget(const std::string& address) {
  if (address.find(',') == std::string::npos) return address;
  const bool v6 = address[0] == '[';
  const std::string allowed = v6 ? "0123456789abcdefABCDEF:.[]," : "0123456789.:,";
  if (address.find_first_not_of(allowed) != std::string::npos) {
    Usage("--address " + address + ": several servers must be all IPv4:PORT or all [IPv6]:PORT"
          " (or dns:///NAME:PORT)");
  }
  return (v6 ? "ipv6:" : "ipv4:") + address;
}

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  PpmImage image;
  try {
    image = ReadPpm(args.image);
  } catch (const std::exception& e) {
    Usage(std::string("--image ") + e.what());
  }
  // Default ROI: most of the image, rotated 5 degrees clockwise about its
  // top-left corner, kept inside the image.
  std::vector<double> roi = args.roi;
  if (roi.empty()) {
    roi = {image.width * 0.08, image.height * 0.02, image.width * 0.85, image.height * 0.85, 5.0};
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  const std::string target = ChannelTarget(args.address);
  if (target != args.address || target.rfind("dns:", 0) == 0) {
    channel_args.SetServiceConfigJSON(kServiceConfig);
  }
  if (target != args.address) {
    // The static resolver's own authority is the whole list, which no TLS certificate names.
    channel_args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, args.address.substr(0, args.address.find(',')));
  }
  auto channel = grpc::CreateCustomChannel(target, ChannelCredentials(args), channel_args);
  auto stub = ObjectClassifier::NewStub(channel);

  if (args.bad_request) return RunBadRequest(*stub, args, image, roi);

  grpc::ClientContext context;
  PrepareCall(&context, args, 60);
  ClassifyObjectResponse response;
  const grpc::Status status = stub->ClassifyObject(&context, MakeRequest(args, image, "single-0", roi), &response);
  if (!status.ok()) {
    std::printf("rpc failed: code=%s (%d) message=%s\n", StatusName(status.error_code()),
                static_cast<int>(status.error_code()), status.error_message().c_str());
    return 1;
  }
  PrintResponse("ClassifyObject", response);
  return RunStream(*stub, args, image, roi);
}
