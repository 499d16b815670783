/**
 * Workshop announcements as JupyterLab notifications: every 20 s the learner's own server is asked
 * (`academy.labtools.announcements`, which asks the trainer service with the server's token, so the
 * browser holds none), and each announcement not seen before is shown once, sticky, as plain text.
 * Seen ids are kept per hub user in localStorage (users of one hub share the browser origin).
 */
import { Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';

import { APIError, every, request } from './api';

export interface IAnnouncement {
  id: number;
  workshop: string;
  text: string;
  time: string;
  author: string;
}

const POLL_SECONDS = 20;

/** The notification's text: the message, then who sent it and when (HH:MM of the service's local time). */
export function describeAnnouncement(a: IAnnouncement): string {
  const at = /T(\d\d:\d\d)/.exec(a.time);
  return `${a.text}\n— ${a.author}, ${a.workshop}${at ? ` ${at[1]}` : ''}`;
}

export function addAnnouncements(): void {
  const key = `academy-lab:announcements-seen:${PageConfig.getOption('hubUser') || 'local'}`;
  let seen: number[] = [];
  try {
    seen = JSON.parse(window.localStorage.getItem(key) || '[]');
  } catch {
    seen = [];
  }
  const known = new Set<number>(seen);
  every(
    () => POLL_SECONDS,
    async () => {
      try {
        const { announcements } = await request<{ announcements: IAnnouncement[] }>('academy/api/announcements');
        // Oldest first, so a learner reads several in the order they were sent.
        for (const a of [...announcements].reverse()) {
          if (known.has(a.id)) {
            continue;
          }
          known.add(a.id);
          Notification.info(describeAnnouncement(a), { autoClose: false });
        }
        window.localStorage.setItem(key, JSON.stringify([...known].slice(-200)));
        return true;
      } catch (err) {
        // 404: a server without the extension (not under a hub); stop asking. Anything else: try again.
        return !(err instanceof APIError && err.status === 404);
      }
    }
  );
}
