// ExpiryReminders: mails a slice's members before it expires (docs/plc.md,
// "Expiry reminders"). Every slice_reminder_interval_s each plcd looks for live
// slices within one of slice_reminder_days of their expiry and, for each, the
// nearest threshold it is within: a slice first seen one day before expiry gets
// the 1-day reminder and never the 7-day one.
//
// A reminder is claimed in the database before it is mailed (slice_reminders:
// one row per slice, expiry date and threshold; only the plcd whose INSERT made
// the row sends), so several plcd on one database send each reminder once. A
// mail that fails releases its claim and a later pass tries again; a claim that
// is neither sent nor released within kStaleClaim (its plcd died mid-send) is
// taken over. A renewal is a new expiry date, whose reminders fall due anew.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plc/config.h"
#include "plc/db.h"
#include "plc/periodic_task.h"
#include "plc/smtp_client.h"

namespace plng::plc {

// "7,1" → {1, 7}: days before expiry, each 1 to 365, at least one, none twice.
// Throws std::invalid_argument saying what is wrong.
std::vector<int> parseReminderDays(std::string_view text);

// The reminder due for a slice `seconds_left` before its expiry: the smallest
// of `days` (ascending) whose window it is in, or 0 when none is due.
int dueReminderDays(const std::vector<int>& days, std::int64_t seconds_left);

// Sends one mail; SmtpMailer in plcd. Throws MailError when it was not sent.
class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual SmtpResult send(const MailMessage& message) = 0;
};

class SmtpMailer final : public Mailer {
 public:
  explicit SmtpMailer(SmtpOptions options) : options_(std::move(options)) {}
  SmtpResult send(const MailMessage& message) override { return sendMail(options_, message); }

 private:
  SmtpOptions options_;
};

// plcd's SMTP settings: smtp_server, smtp_helo (this host's name when empty),
// smtp_timeout_s.
SmtpOptions smtpOptionsFromConfig(const PlcConfig& config);

// What a reminder mail says besides the slice.
struct ReminderSettings {
  std::vector<int> days;  // ascending
  std::string from;       // smtp_from
  std::string portal_url;
  std::int64_t max_renewal = 0;  // slice_max_renewal: how far ahead members may renew

  static ReminderSettings fromConfig(const PlcConfig& config);
};

// One reminder claimed for sending.
struct SliceReminder {
  std::int64_t slice_id = 0;
  std::string slice;
  std::string description;
  std::string url;
  std::int64_t expires_at = 0;  // unix seconds (whole: what a person reads)
  std::string expires_at_key;   // the exact timestamptz of the claim, as text
  int days_before = 0;
  std::vector<std::string> recipients;  // its live, enabled members' emails
};

// The mail of `reminder`, written at `now` (unix seconds).
MailMessage reminderMail(const SliceReminder& reminder, const ReminderSettings& settings,
                         std::int64_t now);

// What became of one reminder in a pass.
struct ReminderOutcome {
  SliceReminder reminder;
  bool sent = false;
  std::string error;                 // why not, when !sent (the claim was released)
  std::vector<std::string> refused;  // recipients the server refused, when sent
};

class PlcdMetrics;

class ExpiryReminders {
 public:
  // A claim neither marked sent nor released this long is taken over.
  static constexpr std::chrono::hours kStaleClaim{1};
  // Claims of expiry dates this far past are deleted.
  static constexpr std::chrono::days kKeepClaims{30};

  // `metrics` (may be null) counts the mails sent and failed.
  ExpiryReminders(Database& db, ReminderSettings settings, std::unique_ptr<Mailer> mailer,
                  std::chrono::milliseconds interval, PlcdMetrics* metrics = nullptr);

  void start() { task_.start(); }
  // Stops after the mail being sent, if any; claims not yet mailed are released.
  void stop();
  // One pass: claims what is due and mails it.
  std::vector<ReminderOutcome> remindOnce();

 private:
  std::vector<SliceReminder> claimDue();
  void markSent(const SliceReminder& reminder);
  void release(const SliceReminder& reminder);

  Database& db_;
  ReminderSettings settings_;
  std::unique_ptr<Mailer> mailer_;
  std::atomic<bool> stopping_{false};
  PeriodicTask task_;
};

}  // namespace plng::plc
