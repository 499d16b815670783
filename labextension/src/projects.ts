/**
 * "New project" in the Launcher: pick a template, name the folder, and the learner's own server
 * (`academy.labtools`, POST academy/api/projects) creates it in the home and opens its notebook.
 * The server checks the name (the same check as `academy project new`); its reason is shown as is.
 * A one-click link (`academy link --template SLUG`) lands on `lab?academy-template=SLUG`: the dialog then
 * opens with that template chosen, and the learner still names the folder (a link never makes one unasked).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { addIcon } from '@jupyterlab/ui-components';

import { APIError, request } from './api';
import { CATEGORY } from './landing';

export const NEW_PROJECT = 'academy:new-project';
const TEMPLATE_PARAM = 'academy-template';

/** The template a link asked for, read once at start-up and taken out of the address bar. */
function linkedTemplate(): string | null {
  const url = new URL(window.location.href);
  const slug = url.searchParams.get(TEMPLATE_PARAM);
  if (slug !== null) {
    url.searchParams.delete(TEMPLATE_PARAM);
    window.history.replaceState(window.history.state, '', url.toString());
  }
  return slug;
}

interface ITemplate {
  slug: string;
  title: string;
  description: string;
  notebook: string;
}

export function addProjects(app: JupyterFrontEnd, launcher: ILauncher | null): void {
  let templates: ITemplate[] = [];
  const linked = linkedTemplate();
  app.commands.addCommand(NEW_PROJECT, {
    label: 'New project',
    icon: addIcon,
    caption: 'Start your own project from a template: notebook, code, data folder and Slurm batch script',
    isVisible: () => templates.length > 0,
    execute: async args => {
      let template = templates.find(t => t.slug === args.template);
      if (!template) {
        const choice = await InputDialog.getItem({
          title: 'New project',
          label: 'Template:',
          items: templates.map(t => t.title)
        });
        if (!choice.button.accept || choice.value === null) {
          return;
        }
        template = templates.find(t => t.title === choice.value);
      }
      if (!template) {
        return;
      }
      const name = await InputDialog.getText({
        title: `New project: ${template.title}`,
        label: `${template.description} Folder name in your home (letters, digits, - and _):`,
        placeholder: template.slug
      });
      if (!name.button.accept || !name.value) {
        return;
      }
      try {
        const made = await request<{ path: string; notebook: string }>('academy/api/projects', {
          method: 'POST',
          body: JSON.stringify({ template: template.slug, name: name.value })
        });
        Notification.success(`Project ${made.path} created from “${template.title}”: see its README.md.`, { autoClose: 10000 });
        await app.commands.execute('filebrowser:go-to-path', { path: made.path });
        await app.commands.execute('docmanager:open', { path: made.notebook });
      } catch (err) {
        Notification.error(`No project created: ${err instanceof APIError ? err.message : err}`, { autoClose: false });
      }
    }
  });
  void request<{ templates: ITemplate[] }>('academy/api/projects')
    .then(body => {
      templates = body.templates;
      app.commands.notifyCommandChanged(NEW_PROJECT);
      launcher?.add({ command: NEW_PROJECT, category: CATEGORY, rank: 5 });
      if (linked !== null) {
        if (templates.some(t => t.slug === linked)) {
          void app.restored.then(() => app.commands.execute(NEW_PROJECT, { template: linked }));
        } else {
          Notification.warning(`The link asked for a project template “${linked.slice(0, 40)}” that this site does not have.`, {
            autoClose: 10000
          });
        }
      }
    })
    .catch(() => undefined);
}
