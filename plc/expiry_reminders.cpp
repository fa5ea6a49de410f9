#include "plc/expiry_reminders.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <stdexcept>

#include "base/strings.h"
#include "plc/plcd_metrics.h"
#include "plc/validate.h"

namespace plng::plc {

namespace {

constexpr std::int64_t kDay = 24 * 3600;

std::string plural(std::int64_t n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

// "6 days", "23 hours", "40 minutes": rounded down, as a person reads a deadline.
std::string timeLeft(std::int64_t seconds) {
  if (seconds >= 2 * kDay) return plural(seconds / kDay, "day");
  if (seconds >= 2 * 3600) return plural(seconds / 3600, "hour");
  return plural(std::max<std::int64_t>(seconds / 60, 1), "minute");
}

// "2026-12-31": what plcctl slice renew --expires takes.
std::string isoDate(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 16> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%d", &tm);
  return text.data();
}

std::string listOfDays(const std::vector<int>& days) {
  std::vector<int> descending(days.rbegin(), days.rend());
  std::string out;
  for (std::size_t i = 0; i < descending.size(); ++i) {
    if (i > 0) out += i + 1 == descending.size() ? " and " : ", ";
    out += std::to_string(descending[i]);
  }
  return out + (descending.size() == 1 && descending[0] == 1 ? " day" : " days");
}

std::string domainOf(const std::string& address) {
  const auto at = address.rfind('@');
  return at == std::string::npos ? "plc" : address.substr(at + 1);
}

std::string thisHostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

}  // namespace

std::vector<int> parseReminderDays(std::string_view text) {
  std::vector<int> days;
  for (const auto& part : base::split(text, ',')) {
    const std::string item(base::trim(part));
    const bool digits =
        !item.empty() && item.size() <= 3 &&
        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int value = digits ? std::stoi(item) : 0;
    if (value < 1 || value > 365) {
      throw std::invalid_argument("'" + item +
                                  "' is not a number of days from 1 to 365 (a list: 7,1)");
    }
    if (std::find(days.begin(), days.end(), value) != days.end()) {
      throw std::invalid_argument(item + " is listed twice");
    }
    days.push_back(value);
  }
  if (days.empty()) throw std::invalid_argument("needs at least one number of days (7,1)");
  std::sort(days.begin(), days.end());
  return days;
}

int dueReminderDays(const std::vector<int>& days, std::int64_t seconds_left) {
  if (seconds_left <= 0) return 0;
  for (int d : days) {
    if (seconds_left <= d * kDay) return d;
  }
  return 0;
}

SmtpOptions smtpOptionsFromConfig(const PlcConfig& config) {
  return SmtpOptions{.server = config.smtp_server,
                     .helo = config.smtp_helo.empty() ? thisHostName() : config.smtp_helo,
                     .timeout = std::chrono::seconds(config.smtp_timeout_s),
                     .starttls = config.smtp_starttls,
                     .ca_file = config.smtp_ca_file};
}

ReminderSettings ReminderSettings::fromConfig(const PlcConfig& config) {
  return ReminderSettings{.days = parseReminderDays(config.slice_reminder_days),
                          .from = config.smtp_from,
                          .portal_url = config.portal_url,
                          .max_renewal = config.slice_max_renewal};
}

MailMessage reminderMail(const SliceReminder& reminder, const ReminderSettings& settings,
                         std::int64_t now) {
  const std::int64_t left = reminder.expires_at - now;
  const std::string expiry = utcTime(reminder.expires_at);
  const std::string& name = reminder.slice;
  // A renewal a member may make: four weeks from now, or the furthest allowed.
  const std::int64_t example = now + std::min<std::int64_t>(28 * kDay, settings.max_renewal);

  std::string body;
  body +=
      "The PlanetLab slice " + name + " expires on " + expiry + ", in " + timeLeft(left) + ".\n\n";
  body +=
      "When it expires, nodes stop running its slivers and remove them. To keep\n"
      "it, renew it before then";
  if (settings.max_renewal > 0) {
    body += " (members may renew it up to " + timeLeft(settings.max_renewal) + " ahead)";
  }
  body += ":\n\n";
  body += "    plcctl slice renew " + name + " --expires " + isoDate(example) + "\n\n";
  if (settings.portal_url.empty()) {
    body += "or on PLC's web portal.\n\n";
  } else {
    body += "or on PLC's web portal: " + settings.portal_url + "\n\n";
  }
  if (reminder.description.empty() || reminder.url.empty()) {
    body += "A slice needs a description and a URL before its members can renew it:\n\n";
    body += "    plcctl slice update " + name + " --description ... --url ...\n\n";
  }
  body += "Slice:       " + name + "\n";
  body += "Expires:     " + expiry + "\n";
  body += "Description: " + (reminder.description.empty() ? "(none)" : reminder.description) + "\n";
  body += "URL:         " + (reminder.url.empty() ? "(none)" : reminder.url) + "\n";
  body += "Members:     " + std::to_string(reminder.recipients.size()) +
          " (this mail went to each)\n\n";
  body += "You receive this as a member of the slice: PLC mails its members " +
          listOfDays(settings.days) + " before it expires.\n";
  body += "-- \nPlanetLab Central\n";

  return MailMessage{
      .from = settings.from,
      .to = reminder.recipients,
      .subject = "PlanetLab slice " + name + " expires in " + timeLeft(left) + " (" + expiry + ")",
      .message_id = "slice-reminder." + std::to_string(reminder.slice_id) + "." +
                    std::to_string(reminder.expires_at) + "." +
                    std::to_string(reminder.days_before) + "d@" + domainOf(settings.from),
      .date = now,
      .body = std::move(body),
  };
}

ExpiryReminders::ExpiryReminders(Database& db, ReminderSettings settings,
                                 std::unique_ptr<Mailer> mailer, std::chrono::milliseconds interval,
                                 PlcdMetrics* metrics)
    : db_(db),
      settings_(std::move(settings)),
      mailer_(std::move(mailer)),
      task_("slice expiry reminders", interval, [this, metrics] {
        for (const auto& outcome : remindOnce()) {
          const auto& r = outcome.reminder;
          if (metrics != nullptr) metrics->reminderMail(outcome.sent);
          if (!outcome.sent) {
            spdlog::warn(
                "slice {}: the {}-day expiry reminder (expiry {}) was not mailed; a later pass "
                "retries: {}",
                r.slice, r.days_before, utcTime(r.expires_at), outcome.error);
            continue;
          }
          spdlog::info("slice {}: mailed the {}-day expiry reminder (expiry {}) to {} member(s)",
                       r.slice, r.days_before, utcTime(r.expires_at),
                       r.recipients.size() - outcome.refused.size());
          for (const auto& refused : outcome.refused) {
            spdlog::warn("slice {}: the mail server refused a recipient of its expiry reminder: {}",
                         r.slice, refused);
          }
        }
      }) {}

void ExpiryReminders::stop() {
  stopping_ = true;
  task_.stop();
  stopping_ = false;
}

std::vector<ReminderOutcome> ExpiryReminders::remindOnce() {
  std::vector<ReminderOutcome> outcomes;
  const auto due = claimDue();
  for (std::size_t i = 0; i < due.size(); ++i) {
    const SliceReminder& reminder = due[i];
    if (stopping_) {
      release(reminder);
      continue;
    }
    ReminderOutcome outcome;
    outcome.reminder = reminder;
    try {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      outcome.refused = mailer_->send(reminderMail(reminder, settings_, now)).refused;
      outcome.sent = true;
    } catch (const std::exception& e) {
      outcome.error = e.what();
    }
    if (outcome.sent) {
      markSent(reminder);
    } else {
      release(reminder);
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

std::vector<SliceReminder> ExpiryReminders::claimDue() {
  return db_.write([&](pqxx::work& tx) {
    tx.exec_params0(
        "DELETE FROM slice_reminders WHERE expires_at < now() - make_interval(days => $1)",
        static_cast<int>(kKeepClaims.count()));
    // Live slices within the furthest threshold, with their live, enabled
    // members (emails are validated addresses: none holds a comma).
    const auto candidates = tx.exec_params(
        "SELECT s.slice_id, s.name, s.description, s.url,"
        "   floor(extract(epoch FROM s.expires_at))::bigint, s.expires_at::text,"
        "   floor(extract(epoch FROM s.expires_at - now()))::bigint, members.emails"
        " FROM slices s,"
        "  LATERAL (SELECT string_agg(p.email, ',' ORDER BY lower(p.email)) AS emails"
        "           FROM slice_members m JOIN persons p ON p.person_id = m.person_id"
        "           WHERE m.slice_id = s.slice_id AND p.deleted_at IS NULL AND p.enabled) members"
        " WHERE s.deleted_at IS NULL AND s.expires_at > now()"
        "   AND s.expires_at <= now() + make_interval(days => $1)"
        "   AND members.emails IS NOT NULL"
        " ORDER BY s.expires_at, s.name",
        settings_.days.back());
    std::vector<SliceReminder> claimed;
    for (const auto& r : candidates) {
      const int days_before = dueReminderDays(settings_.days, r[6].as<std::int64_t>());
      if (days_before == 0) continue;
      SliceReminder reminder{
          .slice_id = r[0].as<std::int64_t>(),
          .slice = r[1].as<std::string>(),
          .description = r[2].as<std::string>(),
          .url = r[3].as<std::string>(),
          .expires_at = r[4].as<std::int64_t>(),
          .expires_at_key = r[5].as<std::string>(),
          .days_before = days_before,
          .recipients = {},
      };
      // The claim: a row this insert made, or took over from a plcd that died
      // mid-mail. Another plcd's concurrent insert of the same row waits for
      // this transaction's commit and then finds the row taken.
      const auto mine = tx.exec_params(
          "INSERT INTO slice_reminders (slice_id, expires_at, days_before)"
          " VALUES ($1, $2::timestamptz, $3)"
          " ON CONFLICT (slice_id, expires_at, days_before) DO UPDATE SET claimed_at = now()"
          "   WHERE slice_reminders.sent_at IS NULL"
          "     AND slice_reminders.claimed_at < now() - make_interval(secs => $4)"
          " RETURNING 1",
          reminder.slice_id, reminder.expires_at_key, reminder.days_before,
          static_cast<double>(
              std::chrono::duration_cast<std::chrono::seconds>(kStaleClaim).count()));
      if (mine.empty()) continue;
      for (const auto& email : base::split(r[7].as<std::string>(), ','))
        reminder.recipients.emplace_back(email);
      claimed.push_back(std::move(reminder));
    }
    return claimed;
  });
}

void ExpiryReminders::markSent(const SliceReminder& reminder) {
  db_.write([&](pqxx::work& tx) {
    tx.exec_params0(
        "UPDATE slice_reminders SET sent_at = now()"
        " WHERE slice_id = $1 AND expires_at = $2::timestamptz AND days_before = $3",
        reminder.slice_id, reminder.expires_at_key, reminder.days_before);
  });
}

void ExpiryReminders::release(const SliceReminder& reminder) {
  db_.write([&](pqxx::work& tx) {
    tx.exec_params0(
        "DELETE FROM slice_reminders"
        " WHERE slice_id = $1 AND expires_at = $2::timestamptz AND days_before = $3"
        " AND sent_at IS NULL",
        reminder.slice_id, reminder.expires_at_key, reminder.days_before);
  });
}

}  // namespace plng::plc
