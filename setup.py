"""Packaging for flagship; metadata and dependency ranges come from settings.ini (nbdev 2)."""
from configparser import ConfigParser

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

# Extras per heavy domain: `pip install -e ".[tabular,serve]"`; `all` is what `make install` uses.
DOMAINS = ("tabular", "serve", "spark", "forecasting", "recsys")  # heavy domains; `all` is every one of them
extras = {name: cfg.get(f"{name}_requirements", "").split() for name in (*DOMAINS, "dev")}
extras["all"] = sorted({req for name in DOMAINS for req in extras[name]})

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    project_urls={"Documentation": cfg["doc_host"] + cfg["doc_baseurl"], "Source": cfg["git_url"]},
    keywords=cfg["keywords"].split(),
    classifiers=["Programming Language :: Python :: 3.11", "License :: OSI Approved :: Apache Software License"],
    python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=["flagship", "flagship.*"]),
    include_package_data=True,
    install_requires=cfg["requirements"].split(),
    extras_require=extras,
    entry_points={
        "console_scripts": cfg["console_scripts"].split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
