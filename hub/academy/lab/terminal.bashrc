# JupyterLab terminals of AI Factory Academy: started as `bash --rcfile <this file> -i`
# (hub/singleuser/jupyter_server_config.py). Do what a login shell does, then put the learner
# environment first on PATH again, because Debian's /etc/profile resets PATH to the system's.
[ -r /etc/profile ] && . /etc/profile
if [ -r "$HOME/.bash_profile" ]; then
    . "$HOME/.bash_profile"
elif [ -r "$HOME/.profile" ]; then
    . "$HOME/.profile"
elif [ -r "$HOME/.bashrc" ]; then
    . "$HOME/.bashrc"
fi
if [ -n "${ACADEMY_ENV_BIN:-}" ] && [ -d "$ACADEMY_ENV_BIN" ]; then
    PATH="$ACADEMY_ENV_BIN:$PATH"
    export PATH
fi
