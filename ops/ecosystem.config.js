// pm2 process file for llc-phone.
//   pm2 start ops/ecosystem.config.js && pm2 save     (then `pm2 startup` once, for boot)
// Run from the checkout (cwd below is the checkout root, where .env and llc-phone.pid live).
// Logs: pm2 logs llc-phone  (stderr, where llc logs, is ~/.pm2/logs/llc-phone-error.log)
const path = require("path");
const root = path.resolve(__dirname, "..");

module.exports = {
  apps: [
    {
      name: "llc-phone", // LLC_SERVICE_NAME: `llc-phone restart` and `llc-phone doctor` look for this name
      cwd: root,
      script: path.join(root, ".venv", "bin", "llc-phone"),
      args: "serve",
      interpreter: "none", // llc is a console script, not a Node program
      exec_mode: "fork",
      instances: 1, // one owner of PORT: never cluster this
      autorestart: true,
      max_restarts: 10,
      min_uptime: "10s",
      restart_delay: 2000,
      // pm2 stops with SIGINT; llc drains on it like on SIGTERM. Wait longer than
      // LLC_DRAIN_TIMEOUT_S (default 30 s) before pm2 sends SIGKILL.
      kill_timeout: 45000,
      env: { LLC_LOG_FORMAT: "json", PYTHONUNBUFFERED: "1" },
    },
  ],
};
