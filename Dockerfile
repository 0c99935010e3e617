# The Astro Runtime image for Airflow 3.3.2 on Python 3.11 (requirements.lock is resolved for 3.11).
# The tag could not be checked here (no Docker, no registry): pick the Astro Runtime 3.3-N release whose notes
# say "Airflow 3.3.2"; the check at the end of this file fails the build if the image ships another Airflow.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-python-3.11

# The runtime's ONBUILD steps have already installed packages.txt and requirements.txt (the project's
# dependencies, pinned as in requirements.lock) and copied this project to /usr/local/airflow. Install the
# package itself from src/, without dependencies, so the DAG's tasks can import `attribution`.
RUN pip install --no-cache-dir --no-deps /usr/local/airflow \
    && python -c "import airflow, sys; sys.exit(None if airflow.__version__ == '3.3.2' else 'The image ships Airflow ' + airflow.__version__ + ', the project pins 3.3.2: change the FROM tag')"
