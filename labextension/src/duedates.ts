/**
 * Due dates in nbgrader's own Assignments panel (issue #11): nbgrader's lab panel shows none, although
 * the list our exchange class gives its `/assignments` API carries `duedate`. When the panel's released
 * or fetched rows appear, the same list is asked for (once per course and refresh) and "due <local
 * time>" is appended to each row that has one, marked past due when it is. Any DOM that does not look
 * like nbgrader's is left alone, so the panel is never broken by this.
 */
import { request } from './api';

interface IListed {
  course_id: string;
  assignment_id: string;
  status: string;
  duedate?: string | null;
}

const LISTS = ['#released_assignments_list', '#fetched_assignments_list'];
const MARK = 'academyDue';

/** The text shown for a due date: the browser's local date and time, and whether it has passed. */
export function describeDue(iso: string, now: Date = new Date()): { text: string; past: boolean } | null {
  const due = new Date(iso);
  if (isNaN(due.getTime())) {
    return null;
  }
  const text = `due ${due.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}`;
  return due.getTime() < now.getTime() ? { text: `${text} (past due)`, past: true } : { text, past: false };
}

/** The panel's top-level rows that have not been annotated yet (nested notebook rows excluded). */
function pendingRows(): HTMLElement[] {
  const rows: HTMLElement[] = [];
  for (const sel of LISTS) {
    const list = document.querySelector(sel);
    list?.querySelectorAll<HTMLElement>(':scope > .list_item').forEach(row => {
      if (!row.dataset[MARK] && row.querySelector('.item_name') && row.querySelector('.item_course')) {
        rows.push(row);
      }
    });
  }
  return rows;
}

async function annotate(): Promise<void> {
  const rows = pendingRows();
  if (!rows.length) {
    return;
  }
  const byCourse = new Map<string, HTMLElement[]>();
  for (const row of rows) {
    row.dataset[MARK] = 'pending';
    const course = (row.querySelector('.item_course')?.textContent || '').trim();
    byCourse.set(course, [...(byCourse.get(course) || []), row]);
  }
  for (const [course, courseRows] of byCourse) {
    let listed: IListed[] = [];
    try {
      const body = await request<{ success: boolean; value: IListed[] }>(
        `assignments?course_id=${encodeURIComponent(course)}`
      );
      listed = body && body.success && Array.isArray(body.value) ? body.value : [];
    } catch (err) {
      console.warn('academy-lab: due dates:', err);
    }
    for (const row of courseRows) {
      row.dataset[MARK] = 'done';
      const name = (row.querySelector('.item_name')?.textContent || '').trim();
      const item = listed.find(a => a.assignment_id === name && a.course_id === course && a.duedate);
      const due = item && item.duedate ? describeDue(item.duedate) : null;
      const anchor = row.querySelector('.item_course');
      if (!due || !anchor) {
        continue;
      }
      const span = document.createElement('span');
      span.className = `academy-due${due.past ? ' academy-due-past' : ''}`;
      span.textContent = ` ${due.text}`;
      span.title = item!.duedate!;
      anchor.appendChild(span);
    }
  }
}

/** Watch for nbgrader's panel rows (it rebuilds them on every refresh) and annotate new ones. */
export function addDueDates(): void {
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) {
      return;
    }
    queued = true;
    window.setTimeout(() => {
      queued = false;
      void annotate().catch(err => console.warn('academy-lab: due dates:', err));
    }, 300);
  });
  observer.observe(document.body, { childList: true, subtree: true });
}
