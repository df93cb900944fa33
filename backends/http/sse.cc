#include "backends/http/sse.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"

namespace lmgate::backends::http {

absl::Status SseParser::Feed(absl::string_view bytes, std::vector<SseEvent>* out) {
  if (!error_.ok()) return error_;
  size_t i = 0;
  while (i < bytes.size()) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (bytes[i] == '\n') {
        ++i;
        continue;
      }
    }
    size_t end = bytes.find_first_of("\r\n", i);
    size_t stop = end == absl::string_view::npos ? bytes.size() : end;
    if (stop > i) {
      line_.append(bytes.data() + i, stop - i);
      line_started_ = true;
      if (line_.size() + data_.size() > max_event_bytes_) {
        error_ = absl::ResourceExhaustedError(absl::StrCat(
            "server-sent event larger than ", max_event_bytes_, " bytes"));
        return error_;
      }
    }
    if (end == absl::string_view::npos) break;
    pending_cr_ = bytes[end] == '\r';
    EndLine(out);
    i = end + 1;
  }
  return absl::OkStatus();
}

absl::Status SseParser::Finish(std::vector<SseEvent>* out) {
  if (!error_.ok()) return error_;
  if (line_started_) EndLine(out);
  Dispatch(out);
  pending_cr_ = false;
  return absl::OkStatus();
}

void SseParser::EndLine(std::vector<SseEvent>* out) {
  absl::string_view line = line_;
  if (first_line_) {
    first_line_ = false;
    absl::ConsumePrefix(&line, "\xEF\xBB\xBF");
  }
  if (line.empty()) {
    Dispatch(out);
  } else if (line.front() != ':') {
    size_t colon = line.find(':');
    absl::string_view field = line.substr(0, colon);
    absl::string_view value;
    if (colon != absl::string_view::npos) {
      value = line.substr(colon + 1);
      absl::ConsumePrefix(&value, " ");
    }
    if (field == "data") {
      data_.append(value.data(), value.size());
      data_.push_back('\n');
      has_data_ = true;
    } else if (field == "event") {
      event_.assign(value.data(), value.size());
    } else if (field == "id") {
      if (value.find('\0') == absl::string_view::npos) id_.assign(value.data(), value.size());
    }
    // "retry" and unknown fields are ignored.
  }
  line_.clear();
  line_started_ = false;
}

void SseParser::Dispatch(std::vector<SseEvent>* out) {
  if (has_data_) {
    if (!data_.empty() && data_.back() == '\n') data_.pop_back();
    out->push_back(SseEvent{std::move(event_), std::move(data_), id_});
  }
  event_.clear();
  data_.clear();
  has_data_ = false;
}

}  // namespace lmgate::backends::http
